SELECT c.data->>'$.name', d.data->>'$.title' FROM relationships r JOIN records c ON c.id = r.source_id JOIN records d ON d.id = r.target_id -- a comment
/* and another */ WHERE r.rel_type = "owns"