DROP TABLE users;
DROP FUNCTION festapi_touch_updated_at();
