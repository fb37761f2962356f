package monitor

import (
	"context"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// Model is the terminal UI of 'mtlog-audit monitor', a bubbletea model: it
// takes a snapshot from its source every interval and shows it in the
// alternate screen, fitted to the window; q, Esc or Ctrl+C quits.
type Model struct {
	ctx      context.Context
	source   func(context.Context) Snapshot
	interval time.Duration
	snap     *Snapshot
	width    int
	height   int
}

// NewModel returns the UI over source, refreshed every interval. source is
// called outside the UI's goroutine and may block (it is given ctx).
func NewModel(ctx context.Context, source func(context.Context) Snapshot, interval time.Duration) *Model {
	return &Model{ctx: ctx, source: source, interval: interval}
}

type snapMsg Snapshot

type tickMsg struct{}

func (m *Model) fetch() tea.Msg { return snapMsg(m.source(m.ctx)) }

// Init takes the first snapshot.
func (m *Model) Init() tea.Cmd { return m.fetch }

// Update handles keys, resizes and snapshots.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch msg.String() {
		case "q", "esc", "ctrl+c":
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case snapMsg:
		s := Snapshot(msg)
		m.snap = &s
		return m, tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
	case tickMsg:
		return m, m.fetch
	}
	return m, nil
}

var (
	titleStyle   = lipgloss.NewStyle().Bold(true).Reverse(true)
	problemStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("9")).Bold(true)
	footerStyle  = lipgloss.NewStyle().Faint(true)
	statusStyles = map[Status]lipgloss.Style{
		StatusOK:       lipgloss.NewStyle().Foreground(lipgloss.Color("10")).Bold(true),
		StatusStarting: lipgloss.NewStyle().Foreground(lipgloss.Color("11")),
		StatusWarning:  lipgloss.NewStyle().Foreground(lipgloss.Color("11")).Bold(true),
		StatusDamaged:  lipgloss.NewStyle().Foreground(lipgloss.Color("9")).Bold(true),
		StatusError:    lipgloss.NewStyle().Foreground(lipgloss.Color("9")).Bold(true),
	}
)

// View renders the last snapshot to the window's size.
func (m *Model) View() tea.View {
	var b strings.Builder
	footer := "q quit · refresh " + m.interval.String()
	if m.snap == nil {
		b.WriteString("mtlog-audit monitor: reading…\n")
	} else {
		lines := Lines(*m.snap, m.width)
		if m.height > 1 && len(lines) > m.height-1 {
			lines = lines[:m.height-1]
		}
		for _, l := range lines {
			switch l.Kind {
			case LineTitle:
				b.WriteString(titleStyle.Render(l.Text))
			case LineStatus:
				b.WriteString(statusStyles[m.snap.Status].Render(l.Text))
			case LineProblem:
				b.WriteString(problemStyle.Render(l.Text))
			default:
				b.WriteString(l.Text)
			}
			b.WriteByte('\n')
		}
	}
	b.WriteString(footerStyle.Render(footer))
	v := tea.NewView(b.String())
	v.AltScreen = true
	v.WindowTitle = "mtlog-audit monitor"
	return v
}
