-- wrk script for scripts/bench: prints one line "WRK_JSON {...}" with the
-- request count, duration, errors and latency percentiles (microseconds).
-- With WRK_MAX_REQUESTS=N each thread stops after N responses (the "cold"
-- runs: the first requests after a restart or a change); otherwise wrk's
-- -d duration applies and responses are not inspected (no overhead).

local max_requests = tonumber(os.getenv("WRK_MAX_REQUESTS") or "0") or 0
-- With WRK_DELAY_MS=D each connection waits D ms between requests, which
-- paces the load (64 connections and 12 ms: at most ~5,300 requests/s) so
-- latency is measured at a given rate rather than at saturation.
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0") or 0

if delay_ms > 0 then
    function delay()
        return delay_ms
    end
end

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
