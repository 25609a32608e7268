package main

// The plots: the empirical distribution of each latency sample group, and
// the x/y series.

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/orchestry/orchestry/bench/result"
)

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
}

// drawPlots draws f's sample groups and series into dir and returns the
// files' names, relative to dir.
func drawPlots(f result.File, dir string) ([]string, error) {
	samples, err := drawGroups(f.Samples, dir, func(s result.Sample) (string, bool) { return s.Plot, len(s.Values) > 0 }, cdf)
	if err != nil {
		return nil, err
	}
	series, err := drawGroups(f.Series, dir, func(s result.Series) (string, bool) { return s.Plot, len(s.X) > 0 }, lines)
	if err != nil {
		return nil, err
	}
	return append(samples, series...), nil
}

// drawGroups draws one plot per group of items (in order of first
// appearance) that have data, as <group>.png in dir, and returns the
// files' names.
func drawGroups[T any](items []T, dir string, group func(T) (name string, hasData bool), draw func(string, []T) (*plot.Plot, error)) ([]string, error) {
	var groups []string
	for _, it := range items {
		if g, _ := group(it); !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	var out []string
	for _, g := range groups {
		var in []T
		for _, it := range items {
			if name, ok := group(it); name == g && ok {
				in = append(in, it)
			}
		}
		if len(in) == 0 {
			continue
		}
		p, err := draw(g, in)
		if err != nil {
			return nil, err
		}
		name := g + ".png"
		if err := save(p, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, nil
}

// cdf plots the empirical cumulative distribution of each sample, on a
// logarithmic axis when every value is positive and the largest is more
// than 20 times the smallest.
func cdf(title string, ss []result.Sample) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title + " (cumulative distribution)"
	p.X.Label.Text = ss[0].Unit
	p.Y.Label.Text = "fraction of trials or requests ≤ x"
	p.Y.Min, p.Y.Max = 0, 1
	lo, hi := 0.0, 0.0
	for i, s := range ss {
		v := slices.Clone(s.Values)
		slices.Sort(v)
		if i == 0 || v[0] < lo {
			lo = v[0]
		}
		hi = max(hi, v[len(v)-1])
		// At most 2,000 points per line.
		step := max(1, len(v)/2000)
		xys := plotter.XYs{{X: v[0], Y: 0}}
		for j := 0; j < len(v); j += step {
			xys = append(xys, plotter.XY{X: v[j], Y: float64(j+1) / float64(len(v))})
		}
		xys = append(xys, plotter.XY{X: v[len(v)-1], Y: 1})
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", title, err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		l.StepStyle = plotter.PostStep
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", s.Name, len(v)), l)
	}
	if lo > 0 && hi/lo > 20 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	} else {
		p.X.Min = min(0, lo)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(5)
	p.Legend.YOffs = vg.Points(5)
	p.Add(plotter.NewGrid())
	return p, nil
}

// lines plots the series as lines with points, x on a logarithmic axis
// when every x is positive and the largest is more than 20 times the
// smallest.
func lines(title string, ss []result.Series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = ss[0].XLabel
	p.Y.Label.Text = ss[0].YLabel
	lo, hi := ss[0].X[0], ss[0].X[0]
	for i, s := range ss {
		var xys plotter.XYs
		for j := range min(len(s.X), len(s.Y)) {
			xys = append(xys, plotter.XY{X: s.X[j], Y: s.Y[j]})
			lo, hi = min(lo, s.X[j]), max(hi, s.X[j])
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", title, err)
		}
		c := palette[i%len(palette)]
		l.Color, pts.Color = c, c
		pts.Shape = draw.CircleGlyph{}
		p.Add(l, pts)
		p.Legend.Add(s.Name, l, pts)
	}
	if lo > 0 && hi/lo > 20 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p, nil
}

func save(p *plot.Plot, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := p.Save(7*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
