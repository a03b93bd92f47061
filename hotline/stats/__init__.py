"""`hotline stats`: the period a report covers, and its rows as a table, JSON or CSV. The figures
themselves come from SQL (hotline.store.stats)."""
