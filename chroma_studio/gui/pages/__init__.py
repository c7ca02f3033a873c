"""The pages of the main window: Machine & model, Dataset, Train, Samples."""
