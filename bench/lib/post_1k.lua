-- wrk script: every request is a POST with a 1 KiB form body.
wrk.method = "POST"
wrk.body = string.rep("a", 1024)
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
