"""At the door: a CONFIRMED booking's tickets and their QR codes, check-in by code
(exactly one scan of a code wins), and the attendee list as CSV."""
