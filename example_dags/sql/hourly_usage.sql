-- One event per customer, metric and hour: the hour's usage, aggregated in the warehouse.
-- :start and :end are the task's data interval (the operator adapts :name to the driver's style).
SELECT
    customer_id                    AS customer_entity_id,
    metric                         AS metric,
    SUM(quantity)                  AS value,
    MIN(hour_start)                AS timestamp,
    region                         AS region,
    plan                           AS plan
FROM usage_hourly
WHERE hour_start >= :start
  AND hour_start < :end
GROUP BY customer_id, metric, region, plan
ORDER BY customer_id, metric, region, plan
