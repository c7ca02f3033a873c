"""The Dataset feature of the app: item models, loading, thumbnails, caption editing and jobs."""
