"""CanvOS-like git repositories for tests (see ../shared/reference/canvos-fixture.md)."""
