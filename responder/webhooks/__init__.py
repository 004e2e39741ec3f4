"""Progress out: each status change posted, signed, to the council file's subscribers."""
