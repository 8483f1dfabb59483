"""REST API of entities: records per published entity (DM-5) and metadata (MD-4)."""
