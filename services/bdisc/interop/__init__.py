"""Files of other tools, read and written: BirdNET-Analyzer's embeddings (its perch-hoplite
database and its 1.x text files), Raven selection tables and Audacity labels."""
