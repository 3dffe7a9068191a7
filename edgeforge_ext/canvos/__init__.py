"""The CanvOS side: the git checkout, the one way to get its facts, and what its tree says a build needs."""
