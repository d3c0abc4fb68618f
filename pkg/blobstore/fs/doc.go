// Package fsblob is the filesystem blob store of the single-machine
// server: every sheet's blobs in one directory tree, where a directory of
// the contract is a real directory and a blob is a regular file.
//
// # Layout
//
//	<dir>/format            "sheetlog fsblob store, format 1"; written first, so
//	                        Open refuses a non-empty directory without it
//	<dir>/lock              flock'd by the process that has the store open
//	<dir>/key               32 random bytes: the continuation token key
//	<dir>/tmp/              temporary files; emptied at Open
//	<dir>/sheets/<sheet>/   a sheet's root directory, then its tree:
//	<dir>/sheets/<sheet>/snap/42/index   the blob "index" in directory snap/42
//
// Sheet ids and names are encoded as below ("Sheet1" is "^sheet1").
//
// # Names
//
// A valid name (blobstore.ValidateName) may be 100 characters of any
// script, up to 400 bytes of UTF-8, and names that differ only in case or
// in Unicode normalization are different names; file systems limit a file
// name to 255 bytes (143 on eCryptfs), and some (macOS, Windows) ignore
// case or normalization. So a name is encoded, byte by byte of its UTF-8:
//
//   - a-z 0-9 - _ . stand for themselves: "index", "0-0-100-100", "42"
//     and "v1.json" are their own file names;
//   - an upper-case letter is "^" and the letter in lower case ("A" is "^a");
//   - any other byte is "%" and two lower-case hex digits (" " is "%20",
//     "é" is "%c3%a9", "%" is "%25", "^" is "%5e", "~" is "%7e").
//
// The encoded form uses lower-case letters only, so it is the same on
// a file system that ignores case, and ASCII only, so no file system can
// normalize it. Decoding is unambiguous, and a name is never encoded as
// "." or ".." (they are not valid names) nor with a "/".
//
// An encoded form of up to 128 bytes is the file (or directory) name.
// A longer one (up to 1,200 bytes) is split: its last 128 bytes are the
// file name, inside continuation directories that hold the rest, 127
// bytes each but the first, each named "~" and its part. So a name of
// 100 "é" (600 encoded bytes) is the path ~P1/~P2/~P3/~P4/L below its
// directory, where P1 is 91 bytes, P2 to P4 127 each and L 128. "~" never
// occurs in an encoded form, so a continuation directory cannot be
// mistaken for a name; listing a directory follows them. Every segment
// stays under 143 bytes.
//
// Anything in the tree that is not exactly the encoding of a valid name
// (a stray file, a symbolic link, a FIFO, ".DS_Store") is not listed, and
// a directory that holds nothing else is empty.
//
// # Writes
//
// WriteBlob writes the bytes to a new file in <dir>/tmp (a directory no
// listing looks at, with random names no blob has), fsyncs it, renames it
// into place, and fsyncs the directory it landed in and every directory
// above it that is not yet known durable (a concurrent writer may have
// made one of them without having synced it yet). When WriteBlob returns
// the blob is on disk. A crash therefore leaves the old blob or the new
// one, never a torn one; the temporary files it leaves are removed by the
// next Open. Blob files are never changed in place, which is also what
// lets CopyBlob share them: it hard-links the source into tmp/ and
// renames the link into place (copying the bytes only where hard links
// fail), with the same fsyncs.
//
// Those fsyncs are few. The store remembers which directories have their
// whole chain (their entry in their parent, and so on up to sheets/) on
// disk, so the ancestors are synced once per directory made, not once
// per blob; it forgets a directory before anything removes it, so one
// made again is synced again. And writers that land in one directory at
// once share its fsync (group commit), each served by an fsync that
// started after its rename. A snapshot's tile copies, 8 at a time into
// one new directory, cost well under one directory fsync each instead of
// four. The argument for both is in durable.go.
//
// # Directories
//
// Directories are made on demand by WriteBlob and removed when their last
// blob goes: RemoveBlob and RemoveAll prune the empty directories above
// them. Pruning only ever uses rmdir, which removes nothing but an empty
// directory, so it cannot lose a blob; a writer whose directory was pruned
// between its mkdir and its rename sees ENOENT and starts over. An empty
// directory left by a crash, or made by a writer whose blob has not
// arrived yet, is invisible to Query (each directory is checked to hold a
// blob somewhere below) and gives way to a blob of the same name (with
// any empty directories below it; a directory holding foreign files does
// not, and the write is a *errs.BlobWrongKindError).
//
// Query reads the whole directory for every page, sorts it and checks
// the directories of the page: fine for a sheet's directories (about
// 2.5 ms for 1,100 entries), not meant for millions.
//
// RemoveAll removes the contents in place, then the directory: it is not
// atomic (a reader may see part of the tree gone; a crash may leave part
// of it, which another RemoveAll removes; a blob written concurrently may
// survive, as if written just after), as with S3. RemoveBlob and RemoveAll
// fsync the directory they removed from.
//
// # Containment
//
// Paths are resolved with os.Root: the store's directory is one, and each
// operation opens its sheet's directory as another, so no symbolic link
// planted in the tree leads outside the sheet (let alone the store). The
// last component is then acted on with *at system calls relative to the
// directory's descriptor, which do not follow a symbolic link there:
// unlinkat (RemoveBlob never removes a directory), rmdir (pruning never
// removes a file), renameat (replaces a link, never its target), linkat
// (CopyBlob refuses anything but a regular file). Reads open with
// O_NONBLOCK and refuse anything but a regular file. Names are validated
// on every call. The package is for Unix (Linux, macOS, the BSDs); on other
// systems Open fails.
//
// # Decisions
//
// The same as the in-memory reference (package memory):
//
//   - GetDir creates nothing; a directory exists while it holds a blob.
//   - A BlobDir is a path: after RemoveAll it is empty and usable. Through
//     a handle whose directory (or one above) a blob has replaced, every
//     operation fails with *errs.BlobWrongKindError (the file system's
//     ENOTDIR), naming the blob in the way; nothing is written or removed.
//   - Query lists blobs and directories together, sorted by name (byte
//     order of the names, not of the encoded forms), PageSize a page. A
//     token is the last name of its page and an HMAC over the sheet, the
//     directory's path and that name, keyed by <dir>/key, so tokens are
//     stateless, survive restarts, and repeating one returns the page
//     after the same name again. A token from another directory, sheet or
//     store, or altered, is a *errs.NoContinuationError.
//   - CopyBlob copies within one sheet of one store; any other source gets
//     blobstore.ErrCopyUnsupported and nothing is written.
//   - Every call checks ctx first, and WriteBlob and CopyBlob check it
//     again just before the rename: a done context is a *errs.StorageError
//     wrapping ctx.Err(), and nothing changes. RemoveAll checks it between
//     entries.
//
// Errors: a missing blob is a *errs.StorageError with status 404; a
// directory where a blob is expected (EISDIR), or a blob on the way to a
// directory (ENOTDIR), is a *errs.BlobWrongKindError; any other failure
// is a *errs.StorageError wrapping the *fs.PathError.
package fsblob
