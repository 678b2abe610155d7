-- wrk script: POST a JSON body to the 5-step pipeline and print p95 at the end.
wrk.method = "POST"
wrk.body = '{"qty": 4}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  io.write(string.format("p50_ms %.2f\np95_ms %.2f\np99_ms %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
