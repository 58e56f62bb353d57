"""Figures: an event's for its organizer, the whole system's for admins."""
