"""The message vocabulary: what a client and the server say on the media socket
(``client``), and what the edge and the agents say on the bus (``room``)."""
