package files

import (
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/odavl/sync/libs/rpc"
)

// clientTypes are the content types a client may upload: images, PDF,
// JSON, CSV and text. Nothing a browser would run (no SVG, no HTML).
var clientTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true,
	"application/pdf": true, "application/json": true, "text/csv": true, "text/plain": true,
}

// generatedTypes are the extra types a service may store (its own reports).
var generatedTypes = map[string]bool{"text/html": true}

// accessLevels are the access levels.
var accessLevels = map[string]bool{rpc.AccessPublic: true, rpc.AccessPrivate: true, rpc.AccessOrganization: true, rpc.AccessProject: true}

// maxRetain bounds retainFor: ten years.
const maxRetain = 10 * 365 * 24 * 3600

// mediaType is the lower-case media type of ct without parameters, or "".
func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// validate checks an upload request, normalises it in place and returns
// every bad field.
func validate(req *rpc.UploadURLRequest, multipart bool) []rpc.FieldError {
	var fe []rpc.FieldError
	bad := func(f, m string) { fe = append(fe, rpc.FieldError{Field: f, Message: m}) }
	name := strings.TrimSpace(req.Filename)
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		bad("filename", "must be valid UTF-8")
	case n < 1 || n > 255:
		bad("filename", "must be 1 to 255 characters")
	case strings.ContainsRune(name, 0):
		bad("filename", "must not contain NUL")
	}
	req.Filename = name
	mt := mediaType(req.ContentType)
	switch {
	case req.ContentType == "":
		bad("contentType", "is required")
	case clientTypes[mt] || (req.Generated && generatedTypes[mt]):
		req.ContentType = mt
	default:
		bad("contentType", "must be one of image/png, image/jpeg, image/gif, image/webp, application/pdf, application/json, text/csv, text/plain")
	}
	switch {
	case req.Size < 1 || req.Size > rpc.MaxFileSize:
		bad("size", "must be 1 byte to 100 MB (104857600 bytes)")
	case multipart && req.Size <= rpc.MultipartThreshold:
		bad("size", "multipart uploads are for files over 5 MB (5242880 bytes); use a single upload URL")
	}
	if req.ExpiresIn == 0 {
		req.ExpiresIn = rpc.DefaultExpiresIn
	} else if req.ExpiresIn < rpc.MinExpiresIn || req.ExpiresIn > rpc.MaxExpiresIn {
		bad("expiresIn", "must be 60 to 3600 seconds")
	}
	if req.AccessLevel == "" {
		req.AccessLevel = rpc.AccessPrivate
	} else if req.AccessLevel = strings.ToUpper(req.AccessLevel); !accessLevels[req.AccessLevel] {
		bad("accessLevel", "must be PUBLIC, PRIVATE, ORGANIZATION or PROJECT")
	}
	if req.RetainFor < 0 || req.RetainFor > maxRetain {
		bad("retainFor", "must be 0 (keep) to 315360000 seconds")
	}
	return fe
}

// sanitize makes a stored name of a client's file name: the last path
// element, without control characters, reserved characters or leading
// dots, at most 255 bytes.
func sanitize(name string) string {
	name = name[strings.LastIndexAny(name, `/\`)+1:]
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
		case strings.ContainsRune(`<>:"|?*`, r):
			b.WriteRune('_')
		default:
			b.WriteRune(r)
		}
	}
	s := strings.Trim(b.String(), " .")
	for len(s) > 255 {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	if s == "" {
		s = "file"
	}
	return s
}
