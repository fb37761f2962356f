package gcs

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// Open returns the backend that rawURL names and connects to it as New
// does:
//
//	gs://BUCKET[/PREFIX][?endpoint=URL]
//
// endpoint is the URL of an emulator (fake-gcs-server:
// http://127.0.0.1:4443); without it the SDK talks to Google with
// Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS), or to
// the emulator STORAGE_EMULATOR_HOST names.
func Open(ctx context.Context, rawURL string) (*Backend, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}

// ParseURL returns the Config that a URL of Open's form describes, without
// a request.
func ParseURL(rawURL string) (Config, error) { return parseURL(rawURL) }

// parseURL turns rawURL into a Config.
func parseURL(rawURL string) (Config, error) {
	const form = "gs://BUCKET[/PREFIX][?endpoint=URL]"
	u, err := url.Parse(rawURL)
	if err != nil {
		return Config{}, fmt.Errorf("gcs: URL does not parse (want %s): %w", form, err)
	}
	if u.Scheme != "gs" || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		c := *u
		c.User, c.RawQuery = nil, ""
		return Config{}, fmt.Errorf("gcs: URL %q is not of the form %s", c.String(), form)
	}
	cfg := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	for k, v := range u.Query() {
		switch {
		case k == "endpoint" && len(v) == 1 && v[0] != "":
			e, err := url.Parse(v[0])
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return Config{}, fmt.Errorf("gcs: endpoint %q is not an http or https URL", v[0])
			}
			cfg.Endpoint = v[0]
		default:
			return Config{}, fmt.Errorf("gcs: URL parameter %q is not known or not given once (the only one is endpoint)", k)
		}
	}
	return cfg, nil
}
