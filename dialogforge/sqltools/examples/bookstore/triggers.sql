-- Stock follows orders. Applied after rows.json is loaded, so the seed data
-- keeps the stock levels written there.
CREATE TRIGGER order_items_reserve_stock AFTER INSERT ON order_items
BEGIN
    UPDATE books SET stock = stock - NEW.quantity WHERE book_id = NEW.book_id;
END;

CREATE TRIGGER order_items_release_stock AFTER DELETE ON order_items
BEGIN
    UPDATE books SET stock = stock + OLD.quantity WHERE book_id = OLD.book_id;
END;

CREATE TRIGGER orders_cancel_release_stock AFTER UPDATE OF status ON orders
WHEN NEW.status = 'cancelled' AND OLD.status <> 'cancelled'
BEGIN
    UPDATE books
    SET stock = stock + (SELECT i.quantity FROM order_items i
                         WHERE i.order_id = NEW.order_id AND i.book_id = books.book_id)
    WHERE book_id IN (SELECT book_id FROM order_items WHERE order_id = NEW.order_id);
END;
