package search

// Composite parameters (R4 search.html#composite).
//
// Index: each value of the composite's expression is a group (numbered
// from 1 per resource); each component's values, evaluated on that value,
// are rows of the component's type under "<code>$<i>" with that group
// number (written by Registry.Index).
//
// Query: "a$b" matches when one group has a row matching a for component 0
// and a row matching b for component 1: code-value-quantity=
// http://loinc.org|29463-7$gt100 finds an Observation whose body-weight
// code and value are in the same Observation or component.

func (r *Registry) compositeExpr(p *Param, mod string, values []string) (Expr, error) {
	if mod != "" {
		return nil, unsupportedf("the modifier :%s is not supported on composite parameters", mod)
	}
	var or Or
	for _, v := range values {
		parts := splitEscaped(v, '$')
		if len(parts) != len(p.Components) {
			return nil, invalidf("%s wants %d values separated by $, not %q", p.Code, len(p.Components), v)
		}
		c := Composite{Param: p.Code}
		for i, comp := range p.Components {
			e, err := r.part(comp, parts[i])
			if err != nil {
				return nil, err
			}
			c.Parts = append(c.Parts, e)
		}
		or = append(or, c)
	}
	return simplify(or), nil
}

// part is the condition of one composite component value.
func (r *Registry) part(c Component, value string) (Exists, error) {
	row := c.Row
	switch c.Type {
	case "token":
		return tokenPart(row, c.fold, value)
	case "string":
		return stringPart(row, value)
	case "date":
		return r.datePart(row, value)
	case "reference":
		return r.referencePart(row, value)
	case "quantity":
		return quantityPart(row, value)
	case "number":
		return numberPart(row, value)
	case "uri":
		return uriPart(row, value)
	}
	return Exists{}, unsupportedf("composite components of type %s are not supported", c.Type)
}
