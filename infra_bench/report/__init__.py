"""Presenting records and plans: terminal tables, and self-contained HTML/Markdown reports with charts."""
