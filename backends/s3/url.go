package s3

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Open returns a Backend for a URL of the form
//
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION&path-style=BOOL&object-lock=required&max-attempts=N]
//
// for example "s3://audit/prod?endpoint=http://127.0.0.1:9000&region=us-east-1".
// The query parameters are the Config fields Endpoint, Region, PathStyle
// (default true when an endpoint is given, as S3-compatible services need,
// false for AWS), RequireObjectLock and MaxAttempts. Credentials never go in
// the URL (it ends up in logs and command lines): they come from the SDK's
// default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a
// role). Errors are those of New, and ErrConfig for a URL that does not
// parse.
func Open(ctx context.Context, rawURL string) (*Backend, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}

// ParseURL returns the Config that a URL of Open's form describes, without
// contacting the service.
func ParseURL(rawURL string) (Config, error) {
	const form = "s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION&path-style=true|false&object-lock=required&max-attempts=N]"
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: %q: %s; the form is %s", ErrConfig, rawURL, fmt.Sprintf(format, args...), form)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return bad("not a URL (%v)", err)
	}
	if u.Scheme != "s3" {
		return bad("the scheme is %q, not s3", u.Scheme)
	}
	if u.User != nil {
		return bad("credentials do not go in the URL: use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile or a role")
	}
	if u.Host == "" || u.Port() != "" {
		return bad("no bucket name after s3://")
	}
	cfg := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("the query does not parse (%v)", err)
	}
	pathStyle := ""
	for k, vs := range query {
		if len(vs) != 1 {
			return bad("parameter %q is given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return bad("endpoint %q is not an http:// or https:// URL", v)
			}
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path-style":
			pathStyle = v
		case "object-lock":
			if v != "required" && v != "optional" {
				return bad("object-lock is %q: use required or optional", v)
			}
			cfg.RequireObjectLock = v == "required"
		case "max-attempts":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return bad("max-attempts is %q: use a positive count", v)
			}
			cfg.MaxAttempts = n
		default:
			return bad("unknown parameter %q", k)
		}
	}
	cfg.PathStyle = cfg.Endpoint != ""
	if pathStyle != "" {
		b, err := strconv.ParseBool(pathStyle)
		if err != nil {
			return bad("path-style is %q: use true or false", pathStyle)
		}
		cfg.PathStyle = b
	}
	return cfg, nil
}
