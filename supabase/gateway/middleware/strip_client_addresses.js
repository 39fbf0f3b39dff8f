// deno-lint-ignore-file no-var
/*
 * Torvus API: Tyk JSVM "pre" middleware (custom_middleware.pre of tyk-api-definition.json).
 *
 * Runs after Tyk's allow list and before Tyk computes $tyk_context.remote_addr, which the
 * definition sends the functions as X-Torvus-Client-IP. Tyk takes that address from a
 * client-sent X-Real-IP, else from the first X-Forwarded-For entry, else from the TCP peer;
 * deleting both headers here leaves the TCP peer, which the client cannot choose.
 *
 * With config_data.torvus_client_address = "x-real-ip" (a load balancer in front of Tyk, the
 * only way to it, overwrites X-Real-IP with its own TCP peer) X-Real-IP is kept.
 *
 * It also refuses (400) any URL with "$": Tyk expands $secret_..., $tyk_context... and
 * $tyk_meta... labels in the URL it rewrites, and the URL comes from the client. And any query
 * naming forceFunctionRegion (in any case): Supabase runs the function in the region it names,
 * in place of the definition's X-Region, so a client could send the functions far from Redis,
 * where rate-limit calls time out and limits are skipped.
 *
 * ECMAScript 5 (Tyk's JSVM is otto). Needs enable_jsvm: true in tyk.conf. The object's name
 * must stay the definition's custom_middleware.pre[0].name. See supabase/gateway/README.md.
 */
var torvusStripClientAddresses = new TykJS.TykMiddleware.NewMiddleware({});

torvusStripClientAddresses.NewProcessRequest(function (request, _session, spec) {
  var config = (spec && spec.config_data) || {};
  var deleted = ["X-Forwarded-For"];
  if (config.torvus_client_address !== "x-real-ip") {
    deleted.push("X-Real-IP");
  }
  request.DeleteHeaders = (request.DeleteHeaders || []).concat(deleted);

  if (String(request.URL).indexOf("$") !== -1) {
    request.ReturnOverrides.ResponseCode = 400;
    request.ReturnOverrides.ResponseError = "The request URL contains a dollar sign, " +
      "which this API does not accept";
  }
  var params = request.Params || {};
  var name;
  for (name in params) {
    if (String(name).toLowerCase() === "forcefunctionregion") {
      request.ReturnOverrides.ResponseCode = 400;
      request.ReturnOverrides.ResponseError = "The query parameter forceFunctionRegion " +
        "is not accepted: the gateway chooses where the functions run";
    }
  }

  // Tyk keeps the body it read, byte for byte, instead of the string it handed over.
  request.IgnoreBody = true;
  return torvusStripClientAddresses.ReturnData(request, {});
});
