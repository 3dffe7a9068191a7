"""External registries: the v2 client, copying images, where the Edge host pulls each image from, profiles."""
