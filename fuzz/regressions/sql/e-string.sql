SELECT e'x'', secret FROM other
--' FROM t