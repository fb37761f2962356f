package export

import (
	"fmt"
	"reflect"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/willibrandon/mtlog-audit/event"
)

// compareFunc is the function an ordering comparison (<, >, <=, >=) with an
// operand of unknown type (a property) is rewritten to call. The name
// cannot be written in an expression (it is not an identifier), so a
// filter cannot call it by mistake.
const compareFunc = "$compare"

// compareOption registers compareFunc: a comparison with a nil operand (a
// missing property) is false; otherwise it compares as expr does.
var compareOption = expr.Function(compareFunc, func(params ...any) (out any, err error) {
	op, a, b := params[0].(string), params[1], params[2]
	if a == nil || b == nil {
		return false, nil
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%v", r)
		}
	}()
	switch op {
	case "<":
		return runtime.Less(a, b), nil
	case ">":
		return runtime.More(a, b), nil
	case "<=":
		return runtime.LessOrEqual(a, b), nil
	default:
		return runtime.MoreOrEqual(a, b), nil
	}
}, new(func(string, any, any) bool))

// filterPatcher rewrites a filter expression before it is checked:
//
//   - an ordering comparison with an operand whose type is not known when
//     the filter is compiled (a property, props.Count) calls compareFunc,
//     so that a missing property makes it false instead of an error
//     ("<nil> > int");
//   - an identifier that is not a variable and names a level in any case
//     (ERROR, error, Err, WRN, info; see event.ParseLevel) is that level's
//     number, so `level >= ERROR` works like `level >= Error`.
type filterPatcher struct {
	locals map[string]bool // names declared with let
}

// Visit implements ast.Visitor.
func (p *filterPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if envNames[n.Value] || p.locals[n.Value] {
			return
		}
		if l, err := event.ParseLevel(n.Value); err == nil {
			ast.Patch(node, &ast.IntegerNode{Value: int(l)})
		}
	case *ast.BinaryNode:
		switch n.Operator {
		case "<", ">", "<=", ">=":
		default:
			return
		}
		if !dynamic(n.Left) && !dynamic(n.Right) {
			return
		}
		ast.Patch(node, &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: compareFunc},
			Arguments: []ast.Node{&ast.StringNode{Value: n.Operator}, n.Left, n.Right},
		})
	}
}

// dynamic reports whether n's type is known only when the filter runs (a
// property). An unknown name has no type: it is left for the checker to
// report.
func dynamic(n ast.Node) bool {
	t := n.Nature().Type
	return t != nil && t.Kind() == reflect.Interface
}

// envNames are the names filterEnv defines (its expr tags).
var envNames = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeOf(filterEnv{})
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("expr"); tag != "" {
			m[tag] = true
		}
	}
	return m
}()

// localNames returns the names src declares with let, which the patcher
// leaves alone (nil when src does not parse: Compile then reports why).
func localNames(src string) map[string]bool {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	ast.Find(tree.Node, func(n ast.Node) bool {
		if d, ok := n.(*ast.VariableDeclaratorNode); ok {
			names[d.Name] = true
		}
		return false
	})
	return names
}
