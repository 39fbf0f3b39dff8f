-- A request id is logged once: the request log's writer retries batches whose outcome it
-- could not see (a connection lost at commit, a deadline), and must be able to do so safely.
delete from public.api_request_log a
  using public.api_request_log b
  where a.request_id = b.request_id and a.id > b.id;
create unique index api_request_log_request_id_key on public.api_request_log (request_id);
