"""An optional signal-following strategy: it trades through the same command path and risk checks as a client."""
