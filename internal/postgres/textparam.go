package postgres

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/jackc/pgx/v5/pgtype"
)

// textParam is a text[] bind parameter: a batch's values of one text column.
//
// pgx encodes a text[] through its generic array plan, which boxes every
// element into an interface (an allocation each), looks up the element's plan
// and grows the parameter buffer a value at a time; for arrays of 100 events
// that was 17 % of the server's CPU (pprof, issue 26). textParamCodec writes
// the same binary array in one pass, growing the buffer at most once.
type textParam []pgtype.Text

// textParamCodec is pgx's text[] codec with textParam's binary encoding in
// front of it; everything else (other Go types, text format, scanning) is the
// inner codec's.
type textParamCodec struct {
	pgtype.Codec
}

// registerTextParam makes m encode textParam with textParamCodec.
func registerTextParam(m *pgtype.Map) {
	t, ok := m.TypeForOID(pgtype.TextArrayOID)
	if !ok {
		return
	}
	m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: textParamCodec{Codec: t.Codec}})
}

func (c textParamCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(textParam); ok && format == pgtype.BinaryFormatCode {
		return textParamPlan{}
	}
	return c.Codec.PlanEncode(m, oid, format, value)
}

type textParamPlan struct{}

var errTooLarge = errors.New("postgres: a text[] parameter over 2 GiB")

// Encode appends PostgreSQL's binary array format (array_recv): the number of
// dimensions (1), whether any element is NULL, the element type (text), the
// length and lower bound (1), then each element as its length (-1 for NULL)
// and bytes. A nil array is a NULL parameter, as pgx encodes a nil slice.
func (textParamPlan) Encode(value any, buf []byte) ([]byte, error) {
	a := value.(textParam)
	if a == nil {
		return nil, nil
	}
	size, hasNull := 20, int32(0)
	for _, t := range a {
		size += 4
		if !t.Valid {
			hasNull = 1
			continue
		}
		size += len(t.String)
	}
	if len(a) > math.MaxInt32 || size > math.MaxInt32 {
		return nil, errTooLarge
	}
	if cap(buf)-len(buf) < size {
		// Twice what is needed: the statement's next parameters are appended to
		// the same buffer, and each regrowth copies every one before.
		grown := make([]byte, len(buf), 2*(len(buf)+size))
		copy(grown, buf)
		buf = grown
	}
	be := binary.BigEndian
	buf = be.AppendUint32(buf, 1)
	buf = be.AppendUint32(buf, uint32(hasNull))
	buf = be.AppendUint32(buf, pgtype.TextOID)
	buf = be.AppendUint32(buf, uint32(len(a)))
	buf = be.AppendUint32(buf, 1)
	for _, t := range a {
		if !t.Valid {
			buf = be.AppendUint32(buf, math.MaxUint32) // -1
			continue
		}
		buf = be.AppendUint32(buf, uint32(len(t.String)))
		buf = append(buf, t.String...)
	}
	return buf, nil
}
