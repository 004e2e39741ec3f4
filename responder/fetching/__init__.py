"""Fetching what outside systems link to (photos), safely: allowed hosts, public addresses."""
