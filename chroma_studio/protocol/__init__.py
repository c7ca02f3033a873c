"""The link between the app and the engine process: typed events, jobs and commands, and the
child-process client. Torch-free, so the app can import it."""
