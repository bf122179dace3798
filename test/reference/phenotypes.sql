-- 24 phenotypes: the latest eligible admission whose conditions (dated admission day through
-- discharge day) reach record rank 3 and carry no phenotype code at ranks 1-2; prediction at
-- the first rank-3 timestamp; label k = a code of phenotype k at rank >= 3.
CREATE OR REPLACE TEMP TABLE ref_ph_rank AS
SELECT st.visit_id, c.concept_id, c.t, dense_rank() OVER (PARTITION BY st.visit_id ORDER BY c.t) AS rnk
FROM ref_stay st JOIN ref_condition c
  ON c.person_id = st.person_id AND CAST(c.t AS DATE) BETWEEN st.s AND st.e;

CREATE OR REPLACE TEMP TABLE ref_ph_stay AS
SELECT st.*,
  (SELECT min(t) FROM ref_ph_rank r WHERE r.visit_id = st.visit_id AND r.rnk = 3) AS rank3_t,
  EXISTS (SELECT 1 FROM ref_ph_rank r JOIN ref_concept_set cs ON cs.task = 'phenotypes' AND cs.concept_id = r.concept_id
          WHERE r.visit_id = st.visit_id AND r.rnk <= 2) AS code_first
FROM ref_stay st;

CREATE OR REPLACE TEMP TABLE ref_ph_rule AS
SELECT *, coalesce(ref_base_rule(birth, age, s, e, 1),
                   CASE WHEN death IS NOT NULL AND s >= death THEN 'starts_on_or_after_death' END,
                   CASE WHEN rank3_t IS NULL THEN 'too_few_record_ranks' END,
                   CASE WHEN code_first THEN 'code_in_first_record_ranks' END) AS rule
FROM ref_ph_stay;

INSERT INTO ref_excluded SELECT 'phenotypes', rule, count(*) FROM ref_ph_rule WHERE rule IS NOT NULL GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE ref_ph_index AS
SELECT * FROM ref_ph_rule WHERE rule IS NULL
QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY s DESC, e DESC, visit_id DESC) = 1;

CREATE OR REPLACE TEMP TABLE ref_ph_hits AS
SELECT i.visit_id, k.set_idx,
       EXISTS (SELECT 1 FROM ref_ph_rank r JOIN ref_concept_set cs ON cs.task = 'phenotypes' AND cs.set_idx = k.set_idx
               AND cs.concept_id = r.concept_id WHERE r.visit_id = i.visit_id AND r.rnk >= 3)::INTEGER AS hit
FROM ref_ph_index i, (SELECT DISTINCT set_idx FROM ref_icd9_code) k;

INSERT INTO ref_samples
SELECT 'phenotypes', i.person_id, epoch_ms(i.rank3_t), NULL, h.labels, i.visit_id, true
FROM ref_ph_index i
JOIN (SELECT visit_id, list(hit ORDER BY set_idx) AS labels FROM ref_ph_hits GROUP BY visit_id) h ON h.visit_id = i.visit_id;
