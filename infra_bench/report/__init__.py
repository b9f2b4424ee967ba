"""Presenting records: terminal tables now; HTML/Markdown reports later."""
