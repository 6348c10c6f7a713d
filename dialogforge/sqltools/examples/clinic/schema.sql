-- A family clinic: doctors, registered patients and their appointments.
-- Times are local 'YYYY-MM-DD HH:MM:SS'; the clinic is open 08:00-18:00.
CREATE TABLE doctors (
    doctor_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    specialty TEXT NOT NULL,
    room TEXT NOT NULL,
    accepts_new_patients INTEGER NOT NULL DEFAULT 1 CHECK (accepts_new_patients IN (0, 1))
);

CREATE TABLE patients (
    patient_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    phone TEXT NOT NULL,
    email TEXT,
    insurance_provider TEXT,
    primary_doctor_id INTEGER REFERENCES doctors(doctor_id)
);

CREATE TABLE appointments (
    appointment_id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(patient_id),
    doctor_id INTEGER NOT NULL REFERENCES doctors(doctor_id),
    starts_at TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes BETWEEN 10 AND 120),
    reason TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'scheduled'
        CHECK (status IN ('scheduled', 'completed', 'cancelled', 'no_show'))
);

CREATE INDEX appointments_doctor_time ON appointments(doctor_id, starts_at);
CREATE INDEX appointments_patient ON appointments(patient_id);
