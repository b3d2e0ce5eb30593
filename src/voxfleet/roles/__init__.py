"""The roles a voxfleet process can play: landing (public page, call API, media
edge), agent (room worker), and ``up``, which runs them all in one process."""
