-- wrk script for scripts/bench: prints one line "WRK_JSON {...}" with the
-- request count, duration, errors and latency percentiles (microseconds).
-- With WRK_MAX_REQUESTS=N each thread stops after N responses (the "cold"
-- runs: the first requests after a restart or a change); otherwise wrk's
-- -d duration applies and responses are not inspected (no overhead).

local max_requests = tonumber(os.getenv("WRK_MAX_REQUESTS") or "0") or 0

if max_requests > 0 then
    local seen = 0
    function response(status, headers, body)
        seen = seen + 1
        if seen >= max_requests then
            wrk.thread:stop()
        end
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
