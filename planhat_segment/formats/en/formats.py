"""English date formats of the admin: ISO-like, with seconds and the time zone's name, so a
time always says which zone it is in (the reader's pick, default UTC)."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
