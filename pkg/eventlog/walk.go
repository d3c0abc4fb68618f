package eventlog

import (
	"context"
	"iter"

	"github.com/sheetlog/sheetlog/pkg/errs"
)

// Pages walks the query [from, to) page by page: it calls Query, yields
// the page, and continues from the page's End until a page is complete.
// Every query passes known, so each page carries LastSnapshot as Query
// does. The first failure is yielded with a zero Page and ends the walk,
// and so does a page that is neither complete nor moves the walk forward
// (a broken log would otherwise make the walk spin).
//
//	for page, err := range eventlog.Pages(ctx, log, eventlog.FromStart, eventlog.ToEnd, nil) {
//		if err != nil {
//			return err
//		}
//		for id, e := range page.All() {
//			...
//		}
//	}
//
// The first page's Start is where the walk really began, which tells
// FromStart and FromSnapshot callers where the log starts or where its
// newest snapshot is.
func Pages(ctx context.Context, log EventLog, from From, to To, known *SequenceID) iter.Seq2[Page, error] {
	return func(yield func(Page, error) bool) {
		for {
			page, err := log.Query(ctx, from, to, known)
			if err != nil {
				yield(Page{}, err)
				return
			}
			if id, numeric := from.ID(); !page.Complete && (page.End <= page.Start || numeric && page.Start != id) {
				yield(Page{}, errs.Storage(nil, "the event log returned an incomplete page [%d, %d) that does not continue the walk", page.Start, page.End))
				return
			}
			if !yield(page, nil) || page.Complete {
				return
			}
			from = FromID(page.End)
		}
	}
}

// All iterates over the page's entries with their sequence ids.
func (p Page) All() iter.Seq2[SequenceID, Entry] {
	return func(yield func(SequenceID, Entry) bool) {
		for i, e := range p.Entries {
			if !yield(p.Start+SequenceID(i), e) {
				return
			}
		}
	}
}
