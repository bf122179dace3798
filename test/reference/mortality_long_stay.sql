-- In-hospital mortality and long stay (>= 7 days): the latest eligible adult inpatient admission
-- (discharge after the admission day, admission before death), prediction at admission day + 1.
CREATE OR REPLACE TEMP TABLE ref_mt_stay AS
SELECT *, coalesce(ref_base_rule(birth, age, s, e, 1),
                   CASE WHEN death IS NOT NULL AND s >= death THEN 'starts_on_or_after_death' END) AS rule
FROM ref_stay;

INSERT INTO ref_excluded SELECT t.task, rule, count(*) FROM ref_mt_stay, (VALUES ('mortality'), ('long_stay')) t(task)
WHERE rule IS NOT NULL GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE ref_mt_index AS
SELECT * FROM ref_mt_stay WHERE rule IS NULL
QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY s DESC, e DESC, visit_id DESC) = 1;

INSERT INTO ref_samples
SELECT 'mortality', person_id, ref_ms(s + 1),
       (death IS NOT NULL AND death > s AND death <= e)::INTEGER, NULL, visit_id,
       (death IS NOT NULL AND death > s AND death <= e) OR e <= (SELECT last_day FROM ref_data_end)
FROM ref_mt_index;

INSERT INTO ref_samples
SELECT 'long_stay', person_id, ref_ms(s + 1), (e - s >= 7)::INTEGER, NULL, visit_id, true FROM ref_mt_index;
