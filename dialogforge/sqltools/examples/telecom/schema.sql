-- A mobile operator: plans, customer accounts, phone lines and monthly bills.
-- Money is in integer cents; dates are 'YYYY-MM-DD'; a NULL allowance is unlimited.
CREATE TABLE plans (
    plan_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    monthly_fee_cents INTEGER NOT NULL CHECK (monthly_fee_cents >= 0),
    data_gb INTEGER,
    minutes INTEGER,
    international_roaming INTEGER NOT NULL DEFAULT 0 CHECK (international_roaming IN (0, 1)),
    available INTEGER NOT NULL DEFAULT 1 CHECK (available IN (0, 1))
);

CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    date_of_birth TEXT NOT NULL,
    billing_address TEXT NOT NULL,
    account_status TEXT NOT NULL DEFAULT 'active' CHECK (account_status IN ('active', 'suspended', 'closed'))
);

CREATE TABLE lines (
    line_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
    phone_number TEXT NOT NULL UNIQUE,
    plan_id TEXT NOT NULL REFERENCES plans(plan_id),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'cancelled')),
    activated_on TEXT NOT NULL,
    data_used_gb REAL NOT NULL DEFAULT 0,
    roaming_enabled INTEGER NOT NULL DEFAULT 0 CHECK (roaming_enabled IN (0, 1))
);

CREATE TABLE bills (
    bill_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
    period TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    due_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('paid', 'unpaid', 'overdue')),
    paid_on TEXT,
    UNIQUE (customer_id, period)
);

CREATE INDEX lines_customer ON lines(customer_id);
CREATE INDEX bills_customer ON bills(customer_id);
