"""The stand-in Earthly image, built in the test session from local files."""
