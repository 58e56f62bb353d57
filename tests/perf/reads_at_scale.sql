-- A database at the scale of the twenty-fourth session (docs/performance.md): 100,000
-- users, 20,000 events, a million bookings (100,000 of event 1; 5,000 of user 100000),
-- 2.05 million tickets (90,000 of event 1's checked in). Into a new database migrated
-- to head (or to 0014, to compare), then VACUUM ANALYZE:
--
--   createdb scale_base
--   DATABASE_URL=postgresql://.../scale_base .venv/bin/flask --app wsgi db upgrade [0014]
--   psql scale_base -f tests/perf/reads_at_scale.sql && psql scale_base -c 'VACUUM ANALYZE'
--
-- The counters (available tickets and quantities) are plausible, not exact: enough for
-- timing reads, and every CHECK holds.
\timing on
SET synchronous_commit = off;
-- users: 1 admin, 1,000 organizers, the rest customers; user 100000 has 5,000 bookings
INSERT INTO users (id, email, password_hash, name, role, created_at, disabled)
SELECT i,
       CASE i % 5 WHEN 0 THEN 'user' || i || '@example.com' WHEN 1 THEN 'anna.' || i || '@mail.example'
                  WHEN 2 THEN 'zoë' || i || '@bücher.example' WHEN 3 THEN 'k' || i || '@shop.example'
                  ELSE 'petrov' || i || '@venues.example' END,
       'x',
       CASE i % 7 WHEN 0 THEN NULL WHEN 1 THEN 'Anna Müller ' || i WHEN 2 THEN 'Οδυσσέας Σ ' || i
                  WHEN 3 THEN 'Mark PETROV ' || i WHEN 4 THEN 'İSTANBUL Şehir ' || i WHEN 5 THEN 'Zoë Ñandú ' || i
                  ELSE 'John Smith ' || i END,
       CASE WHEN i = 1 THEN 'ADMIN' WHEN i <= 1001 THEN 'ORGANIZER' ELSE 'CUSTOMER' END,
       timestamptz '2025-01-01' + i * interval '5 minutes', i % 50 = 0 AND i < 100000
FROM generate_series(1, 100000) i;
SELECT setval('users_id_seq', 100000);

INSERT INTO events (id, title, description, date, location, currency, seating, total_tickets, available_tickets,
                    status, organizer_id, created_at, updated_at)
SELECT i, 'Event ' || i, 'A concert number ' || i, timestamptz '2027-06-01' + i * interval '1 hour', 'Hall ' || (i % 300),
       CASE WHEN i % 4 = 0 THEN 'USD' ELSE 'EUR' END, 'GENERAL',
       CASE WHEN i = 1 THEN 400000 ELSE 1000 END, CASE WHEN i = 1 THEN 150000 ELSE 500 END,
       CASE WHEN i % 20 = 0 THEN 'CANCELLED' ELSE 'SCHEDULED' END, 2 + i % 1000,
       timestamptz '2026-01-01' + i * interval '10 minutes', timestamptz '2026-01-01' + i * interval '10 minutes'
FROM generate_series(1, 20000) i;
SELECT setval('events_id_seq', 20000);

-- three types for event 1 (ids 1-3), two for each other event
INSERT INTO ticket_types (id, event_id, name, price, quantity, available_quantity)
VALUES (1, 1, 'Standard', 25.10, 200000, 80000), (2, 1, 'VIP', 70.05, 100000, 40000), (3, 1, 'Student', 12.50, 100000, 30000);
INSERT INTO ticket_types (id, event_id, name, price, quantity, available_quantity)
SELECT 4 + (e - 2) * 2 + t, e, CASE t WHEN 0 THEN 'Standard' ELSE 'VIP' END, CASE t WHEN 0 THEN 30 ELSE 80 END, 500, 250
FROM generate_series(2, 20000) e, generate_series(0, 1) t;
SELECT setval('ticket_types_id_seq', (SELECT max(id) FROM ticket_types));

-- bookings, a million, in the order they were made: every tenth is event 1's (100,000,
-- users 1..100000), every 200th from the sixth user 100000's (5,000, events 2..5001,
-- two by two at the same instant), the rest spread over events 2..20000
INSERT INTO bookings (id, event_id, user_id, tickets_count, total_amount, status, created_at)
SELECT i + 1,
       CASE WHEN i % 10 = 0 THEN 1 WHEN i % 200 = 5 THEN 2 + i / 200 ELSE 2 + i % 19999 END,
       CASE WHEN i % 10 = 0 THEN 1 + i / 10 WHEN i % 200 = 5 THEN 100000
            ELSE 1002 + ((i / 19999) * 2003 + (i % 19999) * 37) % 98998 END,
       CASE WHEN i % 10 = 0 THEN 1 + (i / 10) % 4 ELSE 1 + i % 3 END, 0,
       CASE WHEN i % 10 = 0 AND (i / 10) % 10 = 0 THEN 'CANCELLED' WHEN i % 10 = 0 THEN 'CONFIRMED'
            WHEN i % 200 = 5 AND i % 9 = 0 THEN 'CANCELLED' WHEN i % 11 = 0 THEN 'CANCELLED' ELSE 'CONFIRMED' END,
       timestamptz '2026-01-01' + CASE WHEN i % 200 = 5 THEN (i / 400) * 400 ELSE i END * interval '30 seconds'
FROM generate_series(0, 999999) i;
SELECT setval('bookings_id_seq', (SELECT max(id) FROM bookings));

-- one item per booking, of one of its event's types
INSERT INTO items (booking_id, ticket_type_id, count, unit_price)
SELECT b.id, t.id, b.tickets_count, t.price
FROM bookings b JOIN ticket_types t ON t.event_id = b.event_id
 AND t.id = (SELECT min(id) FROM ticket_types WHERE event_id = b.event_id) + b.id % (CASE WHEN b.event_id = 1 THEN 3 ELSE 2 END);
UPDATE bookings b SET total_amount = i.count * i.unit_price FROM items i WHERE i.booking_id = b.id;

-- holds: 500 HELD on event 1, 20,000 ended ones elsewhere
INSERT INTO holds (id, event_id, user_id, tickets_count, total_amount, status, expires_at, created_at)
SELECT h, 1, 100 + h, 2, 50.20, 'HELD', now() + interval '10 minutes', now() FROM generate_series(1, 500) h;
INSERT INTO holds (id, event_id, user_id, tickets_count, total_amount, status, expires_at, created_at, ended_at)
SELECT h, 2 + h % 19999, 1002 + h * 3 % 98998, 1, 30, CASE WHEN h % 2 = 0 THEN 'EXPIRED' ELSE 'RELEASED' END,
       now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
FROM generate_series(501, 20500) h;
SELECT setval('holds_id_seq', 20500);
INSERT INTO items (hold_id, ticket_type_id, count, unit_price)
SELECT h.id, CASE WHEN h.event_id = 1 THEN 1 + h.id % 3 ELSE 4 + (h.event_id - 2) * 2 END, h.tickets_count, 25.10
FROM holds h;

-- tickets: one per unit of every booking; 30% of event 1's checked in
INSERT INTO tickets (booking_id, ticket_type_id, code, checked_in_at)
SELECT i.booking_id, i.ticket_type_id, md5(i.booking_id || '-' || n),
       CASE WHEN b.event_id = 1 AND b.status = 'CONFIRMED' AND (b.id + n) % 10 < 3 THEN b.created_at + interval '30 days' END
FROM items i JOIN bookings b ON b.id = i.booking_id, generate_series(1, i.count) n;

-- waiting lists: 2,000 on event 1, 20,000 elsewhere
INSERT INTO waitlist_entries (event_id, user_id, ticket_type_id, tickets_count, status, created_at, updated_at)
SELECT 1, 1000 + w, 1 + w % 3, 1, CASE WHEN w % 4 = 0 THEN 'LEFT' ELSE 'WAITING' END, now(), now()
FROM generate_series(1, 2000) w;
INSERT INTO waitlist_entries (event_id, user_id, ticket_type_id, tickets_count, status, created_at, updated_at)
SELECT 2 + w % 19999, 5000 + w, 4 + (w % 19999) * 2, 1, CASE WHEN w % 3 = 0 THEN 'LAPSED' ELSE 'WAITING' END, now(), now()
FROM generate_series(1, 20000) w;

-- the outbox: 200,000 sent, a few pending or failed
INSERT INTO notifications (kind, user_id, recipient, params, status, attempts, next_attempt_at, created_at, sent_at)
SELECT 'BOOKING_CONFIRMED', 1002 + n % 98998, 'user' || n || '@example.com', '{}',
       CASE WHEN n % 1000 = 0 THEN 'FAILED' WHEN n % 997 = 0 THEN 'PENDING' ELSE 'SENT' END, 1,
       now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
FROM generate_series(1, 200000) n;
