package dynamo

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sheetlog/sheetlog/internal/ctxsleep"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// noSDKRetry turns off the SDK's own retries for the calls of this
// package: the store retries itself (retry below), because it must know
// when an attempt's outcome was lost (a write that may have committed) and
// it classifies transaction cancellations, which the SDK does not.
func noSDKRetry(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} }

var sdkRetryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// transient reports whether err is worth another attempt: throttling,
// 5xx, connection and timeout errors, and transactions cancelled only for
// transient reasons (a conflicting transaction, throttling).
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		if len(tce.CancellationReasons) == 0 {
			return false
		}
		for _, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "", "None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			default:
				return false
			}
		}
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
			"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
			"TransactionInProgressException", "LimitExceededException":
			return true
		}
	}
	return sdkRetryables.IsErrorRetryable(err) == aws.TrueTernary
}

// Retry is the policy for transient failures: up to MaxAttempts attempts,
// sleeping a uniformly random time in [0, min(MaxDelay, BaseDelay·2^n))
// before attempt n+1 ("full jitter", so that racing clients spread out).
type Retry struct {
	MaxAttempts int
	BaseDelay   time.Duration
	MaxDelay    time.Duration
}

// DefaultRetry gives up after about two seconds of sleeping in the worst
// case.
var DefaultRetry = Retry{MaxAttempts: 8, BaseDelay: 20 * time.Millisecond, MaxDelay: 500 * time.Millisecond}

func (r Retry) delay(attempt int) time.Duration {
	d := r.BaseDelay << min(attempt, 30)
	if d <= 0 || d > r.MaxDelay {
		d = r.MaxDelay
	}
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// do runs call until it succeeds, fails with a non-transient error, or
// the attempts run out. Every attempt sends the identical request (a
// TransactWriteItems keeps its ClientRequestToken), so a retry after a
// lost reply is idempotent where DynamoDB makes it so. The error of a
// failed call is returned as is for the caller to classify; running out of
// attempts and a done context are StorageErrors.
// request sends one read-only request (or an idempotent write) through
// do: op is a method value of the client such as s.db.Query.
func request[In, Out any](ctx context.Context, s *Store, what string, op func(context.Context, In, ...func(*dynamodb.Options)) (Out, error), in In) (Out, error) {
	var out Out
	err := s.do(ctx, what, func(ctx context.Context) error {
		var err error
		out, err = op(ctx, in, noSDKRetry)
		return err
	})
	return out, err
}

func (s *Store) do(ctx context.Context, what string, call func(context.Context) error) error {
	_, err := s.doWrite(ctx, what, call)
	return err
}

// doWrite is do for writes: it also reports whether an attempt may have
// taken effect unseen (its reply was lost, or was a 5xx), in which case a
// later "condition failed" may be this very call's own earlier write, and
// the caller must find out before it answers.
func (s *Store) doWrite(ctx context.Context, what string, call func(context.Context) error) (maybeApplied bool, err error) {
	for attempt := 0; ; attempt++ {
		if cerr := ctx.Err(); cerr != nil {
			return maybeApplied, errs.Storage(cerr, "%s", what)
		}
		err = call(ctx)
		if err == nil {
			return maybeApplied, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return maybeApplied || ambiguous(err), errs.Storage(cerr, "%s", what)
		}
		if !transient(err) {
			return maybeApplied, err
		}
		maybeApplied = maybeApplied || ambiguous(err)
		if attempt+1 >= s.retry.MaxAttempts {
			return maybeApplied, errs.Storage(err, "%s: still failing after %d attempts", what, attempt+1)
		}
		s.log.Debug("dynamodb: retrying", "op", what, "attempt", attempt+1, "err", err)
		if serr := ctxsleep.Sleep(ctx, s.retry.delay(attempt)); serr != nil {
			return maybeApplied, errs.Storage(serr, "%s", what)
		}
	}
}

// ambiguous reports whether a failed request may nevertheless have been
// applied: anything but a 4xx answer (throttling, a cancelled
// transaction), which says the service refused it.
func ambiguous(err error) bool {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		code := re.HTTPStatusCode()
		return code < 400 || code >= 500
	}
	return true
}

// unknownOutcome is the error of a write whose earlier attempt may have
// been applied when that can no longer be established. The contract
// allows it: a StorageError may or may not have taken effect.
func unknownOutcome(what string) error {
	return errs.Storage(nil, "%s: a reply was lost and whether the write was applied cannot be established", what)
}

// storageErr wraps an unexpected error of a call as a StorageError (errors
// that already are contract errors pass through).
func storageErr(err error, what string) error {
	if errs.TypeOf(err) != "" {
		return err
	}
	return errs.Storage(err, "%s", what)
}

// conditionFailed reports a transaction cancelled because a condition
// did not hold, with the reasons, one per item in request order.
func conditionFailed(err error) ([]types.CancellationReason, bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, false
	}
	for _, r := range tce.CancellationReasons {
		if aws.ToString(r.Code) == "ConditionalCheckFailed" {
			return tce.CancellationReasons, true
		}
	}
	return nil, false
}

func reasonFailed(rs []types.CancellationReason, i int) bool {
	return i < len(rs) && aws.ToString(rs[i].Code) == "ConditionalCheckFailed"
}

func reasonItem(rs []types.CancellationReason, i int) map[string]types.AttributeValue {
	if i < len(rs) {
		return rs[i].Item
	}
	return nil
}
