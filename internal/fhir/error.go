package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Code is the kind of a failure. There are few of them on purpose: each maps
// to exactly one HTTP status and one default OperationOutcome issue type, in
// [Status] and [IssueType].
type Code string

// The error codes. The comment gives the HTTP status each becomes.
const (
	Invalid              Code = "invalid"                // 400 malformed or invalid input
	NotSupported         Code = "not-supported"          // 400 a valid request the server does not support
	Unauthorized         Code = "unauthorized"           // 401 no or bad credentials
	Forbidden            Code = "forbidden"              // 403 credentials lack the permission
	TooCostly            Code = "too-costly"             // 403 the request would cost too much to answer
	NotFound             Code = "not-found"              // 404 unknown type or id
	MethodNotAllowed     Code = "method-not-allowed"     // 405
	NotAcceptable        Code = "not-acceptable"         // 406 Accept asks for a format we do not produce
	Conflict             Code = "conflict"               // 409 version conflict or duplicate
	Gone                 Code = "gone"                   // 410 the resource was deleted
	PreconditionFailed   Code = "precondition-failed"    // 412 If-Match or conditional precondition failed
	TooLarge             Code = "too-large"              // 413 request body over the limit
	UnsupportedMediaType Code = "unsupported-media-type" // 415 body in a format we do not read
	Unprocessable        Code = "unprocessable"          // 422 well-formed but breaks a business rule
	Internal             Code = "internal"               // 500 anything unexpected
)

// Status is the HTTP status of an error code. It is the only mapping from
// codes to statuses in the project.
func Status(c Code) int {
	switch c {
	case Invalid, NotSupported:
		return 400
	case Unauthorized:
		return 401
	case Forbidden, TooCostly:
		return 403
	case NotFound:
		return 404
	case MethodNotAllowed:
		return 405
	case NotAcceptable:
		return 406
	case Conflict:
		return 409
	case Gone:
		return 410
	case PreconditionFailed:
		return 412
	case TooLarge:
		return 413
	case UnsupportedMediaType:
		return 415
	case Unprocessable:
		return 422
	default:
		return 500
	}
}

// IssueType is the OperationOutcome.issue.code (FHIR IssueType value set)
// used for an error of code c when the error does not name its own issues.
func IssueType(c Code) string {
	switch c {
	case Invalid:
		return "invalid"
	case NotSupported, MethodNotAllowed, NotAcceptable, UnsupportedMediaType:
		return "not-supported"
	case Unauthorized:
		return "login"
	case Forbidden:
		return "forbidden"
	case TooCostly:
		return "too-costly"
	case NotFound:
		return "not-found"
	case Conflict, PreconditionFailed:
		return "conflict"
	case Gone:
		return "deleted"
	case TooLarge:
		return "too-long"
	case Unprocessable:
		return "processing"
	default:
		return "exception"
	}
}

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    string   `json:"severity"` // fatal | error | warning | information
	Code        string   `json:"code"`     // FHIR IssueType
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"` // FHIRPath of the offending element
}

// Error is the error type of the FHIR layer. Code decides the HTTP status;
// Issues, when present, are reported as they are, otherwise Message becomes a
// single issue.
type Error struct {
	Code    Code
	Message string
	Issues  []Issue
}

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	if len(e.Issues) > 0 {
		return e.Issues[0].Diagnostics
	}
	return string(e.Code)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, Internal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// IsCode reports whether err carries the given code.
func IsCode(err error, c Code) bool { return err != nil && ErrorCode(err) == c }

// OutcomeIssues returns the issues that describe err to a client. Internal
// errors are reported with a generic message: their detail belongs in the
// server log (with the request id), never in a response.
func OutcomeIssues(err error) []Issue {
	var e *Error
	if !errors.As(err, &e) || e.Code == Internal {
		return []Issue{{Severity: "fatal", Code: "exception", Diagnostics: "internal server error"}}
	}
	if len(e.Issues) > 0 {
		return e.Issues
	}
	return []Issue{{Severity: "error", Code: IssueType(e.Code), Diagnostics: e.Message}}
}

// Outcome renders issues as an OperationOutcome resource.
func Outcome(issues ...Issue) []byte {
	b, err := json.Marshal(struct {
		ResourceType string  `json:"resourceType"`
		Issue        []Issue `json:"issue"`
	}{"OperationOutcome", issues})
	if err != nil { // cannot happen: the struct holds only strings
		panic(err)
	}
	return b
}

// ErrorOutcome renders err as an OperationOutcome.
func ErrorOutcome(err error) []byte { return Outcome(OutcomeIssues(err)...) }
