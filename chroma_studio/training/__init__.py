"""The training engine: torch, diffusers, peft and optimum-quanto. Never Qt."""
