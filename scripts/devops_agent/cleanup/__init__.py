"""The cleanup janitor: policy, pure planner, collectors, act layer and report."""
