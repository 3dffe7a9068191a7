"""What `build` does: the plan, the steps and their driver, Earthly, collect, push, the report."""
