-- Paying the last overdue bill of a suspended account reinstates the account.
-- Applied after rows.json is loaded.
CREATE TRIGGER bills_paid_reinstate_account AFTER UPDATE OF status ON bills
WHEN NEW.status = 'paid'
BEGIN
    UPDATE customers SET account_status = 'active'
    WHERE customer_id = NEW.customer_id
      AND account_status = 'suspended'
      AND NOT EXISTS (SELECT 1 FROM bills WHERE customer_id = NEW.customer_id AND status = 'overdue');
END;
