"""orchestrator: run a script across a fleet of Alibaba Cloud ECS instances."""
