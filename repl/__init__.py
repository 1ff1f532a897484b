"""The interactive client and the file runner; they talk to a broker over HTTP only."""
