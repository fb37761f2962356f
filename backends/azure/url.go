package azure

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Open returns the backend that rawURL names and connects to it as New
// does:
//
//	azure://ACCOUNT/CONTAINER[/PREFIX][?endpoint=URL]
//
// endpoint is the blob service URL when it is not
// https://ACCOUNT.blob.core.windows.net/ (for Azurite:
// http://127.0.0.1:10000/devstoreaccount1). The account key comes from the
// environment: AZURE_STORAGE_KEY, or else the AccountKey (and BlobEndpoint,
// unless endpoint is given) of AZURE_STORAGE_CONNECTION_STRING, whose
// AccountName must then be ACCOUNT. The URL never carries the key.
func Open(ctx context.Context, rawURL string) (*Backend, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}

// ParseURL returns the Config that a URL of Open's form and the environment
// describe, without a request.
func ParseURL(rawURL string) (Config, error) { return parseURL(rawURL, os.Getenv) }

// parseURL turns rawURL and the environment getenv reads into a Config.
func parseURL(rawURL string, getenv func(string) string) (Config, error) {
	const form = "azure://ACCOUNT/CONTAINER[/PREFIX][?endpoint=URL]"
	u, err := url.Parse(rawURL)
	if err != nil {
		return Config{}, fmt.Errorf("azure: URL does not parse (want %s): %w", form, err)
	}
	if u.Scheme != "azure" || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return Config{}, fmt.Errorf("azure: URL %q is not of the form %s", redact(u), form)
	}
	container, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if container == "" {
		return Config{}, fmt.Errorf("azure: URL %q names no container (want %s)", redact(u), form)
	}
	cfg := Config{Account: u.Host, Container: container, Prefix: strings.TrimSuffix(prefix, "/")}
	for k, v := range u.Query() {
		switch {
		case k == "endpoint" && len(v) == 1 && v[0] != "":
			e, err := url.Parse(v[0])
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return Config{}, fmt.Errorf("azure: endpoint %q is not an http or https URL", v[0])
			}
			cfg.Endpoint = v[0]
		default:
			return Config{}, fmt.Errorf("azure: URL parameter %q is not known or not given once (the only one is endpoint)", k)
		}
	}
	if key := getenv("AZURE_STORAGE_KEY"); key != "" {
		cfg.Key = key
		return cfg, nil
	}
	cs := getenv("AZURE_STORAGE_CONNECTION_STRING")
	if cs == "" {
		return Config{}, fmt.Errorf("azure://%s/%s: no account key: set AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING", cfg.Account, cfg.Container)
	}
	fields := map[string]string{}
	for _, part := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(part, "="); ok {
			fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	if fields["accountname"] != cfg.Account {
		return Config{}, fmt.Errorf("azure://%s/%s: AZURE_STORAGE_CONNECTION_STRING is for account %q, not %q",
			cfg.Account, cfg.Container, fields["accountname"], cfg.Account)
	}
	if fields["accountkey"] == "" {
		return Config{}, fmt.Errorf("azure://%s/%s: AZURE_STORAGE_CONNECTION_STRING has no AccountKey", cfg.Account, cfg.Container)
	}
	cfg.Key = fields["accountkey"]
	if cfg.Endpoint == "" {
		cfg.Endpoint = fields["blobendpoint"]
	}
	return cfg, nil
}

// redact returns u as a string without its query, which may hold a
// token.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	c.User = nil
	return c.String()
}
